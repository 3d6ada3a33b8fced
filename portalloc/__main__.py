"""``python -m portalloc`` runs the command line."""

from portalloc.cli.entry import main

if __name__ == "__main__":
    main()
