"""What the command-line entry points (quantize.py, generate.py, serve.py) share."""

import argparse


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors, `prog: error: message` and exit code 2, without the usage block in front
    (`--help` prints it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")
