"""`python -m capsim` runs the command line."""

from capsim.cli.entry import main

main()
