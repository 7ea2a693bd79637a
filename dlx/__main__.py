"""`python -m dlx`: the dlx command as a module, which is how torchrun starts each process (`torchrun ... -m dlx
train SPEC`)."""
from dlx.cli.main import main

main()
