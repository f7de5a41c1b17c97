from simd.cli.app import main

main()
