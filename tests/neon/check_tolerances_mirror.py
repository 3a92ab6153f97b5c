"""Fails unless every Tolerance in tolerances.h equals its entry in mbv2_engine/tolerances.py.

The C++ tests mirror the one table instead of reading it; this keeps the mirror honest.
Reads the Python table with ast, so it needs no numpy.
"""
import ast
import pathlib
import re
import sys

here = pathlib.Path(__file__).resolve().parent
table_src = (here.parents[1] / "mbv2_engine" / "tolerances.py").read_text()
table_node = next(node.value for node in ast.parse(table_src).body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TOLERANCES")
table = ast.literal_eval(table_node)

mirrored = re.findall(r'Tolerance k\w+\{"(\w+)", ([^,]+), ([^}]+)\}', (here / "tolerances.h").read_text())
if not mirrored:
    sys.exit("tolerances.h mirrors no entry: the pattern above no longer matches it")
bad = [f"{entry}: C++ ({atol}, {rtol}) vs Python {table[entry][:2] if entry in table else 'missing'}"
       for entry, atol, rtol in mirrored
       if entry not in table or (float(atol), float(rtol)) != tuple(table[entry][:2])]
if bad:
    sys.exit("tolerances.h is out of step with mbv2_engine/tolerances.py:\n  " + "\n  ".join(bad))
print(f"{len(mirrored)} mirrored tolerance entries match")
