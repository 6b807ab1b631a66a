# Exchange-time arithmetic shared by the per-pair state: floor division of times and ring slots.
#
# Why inline in a .pxd: these run per deal, per closed second and per row; as inline C they cost
# what the expression costs, and windows, history and features share one definition of each.

cdef inline long long floordiv(long long a, long long b) noexcept nogil:
    """Python's a // b for b > 0 (C truncates toward zero; times before the epoch must floor)."""
    return a // b if a >= 0 else -((-a + b - 1) // b)


cdef inline long long floormod(long long a, long long b) noexcept nogil:
    """Python's a % b for b > 0: the ring slot of second (or bucket) a in a ring of b slots."""
    return a - floordiv(a, b) * b


cdef inline int next_slot(int slot, int size) noexcept nogil:
    """The slot after slot in a ring of size slots: a compare per step instead of a modulo."""
    slot += 1
    return 0 if slot == size else slot
