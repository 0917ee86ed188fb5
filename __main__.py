"""`python -m mnist_live`: the same as the `mnist-live` command."""
from mnist_live.main import cli

cli()
