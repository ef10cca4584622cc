# The chaos pytest plugin registers itself through the pytest11 entry point once the
# package is installed (`pip install -e .`). Nothing else belongs here.
