"""`python -m rsearch.cli` runs the command line."""

from rsearch.cli import main

main()
