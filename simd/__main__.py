from simd.cli import main

main()
