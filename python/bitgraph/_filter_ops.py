"""Op codes of compiled filter programs.

:mod:`bitgraph.attributes` compiles a :class:`~bitgraph.Filter` into rows ``(code, begin, end)``
of a postfix program; the backends evaluate it into a bitset over slots
(csrc/filter/bitset_program.hpp, ``FilterOp``, and ``bitgraph._numba.filtered``). Both sides
import the codes from here, the lowest layer, so the kernels need nothing of the filter API.
"""

OP_SCATTER = 0  # push a bitset with the slots of entries [begin, end) set
OP_AND = 1
OP_OR = 2
OP_NOT = 3
OP_PREFIX_DIFF = 4  # push loads[begin] & ~loads[end] (prefix bitmaps of a field)
