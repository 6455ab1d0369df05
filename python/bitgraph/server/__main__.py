"""``python -m bitgraph.server ...``: the same as ``bitgraph serve ...``."""

from ..cli import main

if __name__ == "__main__":
    main(["serve", *__import__("sys").argv[1:]])
