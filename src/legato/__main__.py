from legato.cli.main import main

main()
