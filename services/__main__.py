from herstelbus.cli import main

main()
