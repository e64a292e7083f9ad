"""A slice module that fails on import (the analyze job must say so in one line)."""

raise RuntimeError("this slice module is broken on purpose")
