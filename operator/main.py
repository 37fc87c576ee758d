# For `kopf run operator/main.py`; importing the module registers every handler.
from clickagg.operator import main  # noqa: F401
