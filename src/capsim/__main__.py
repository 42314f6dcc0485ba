"""`python -m capsim` runs the command line."""

from capsim.cli.app import main

main()
