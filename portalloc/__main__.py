"""``python -m portalloc`` runs the command line."""

from portalloc.cli.main import main

if __name__ == "__main__":
    main()
