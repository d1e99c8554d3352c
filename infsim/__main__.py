from infsim.cli import main

main()
