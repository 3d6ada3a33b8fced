"""``python -m portalloc`` runs the command line."""

from portalloc.cli import main

if __name__ == "__main__":
    main()
