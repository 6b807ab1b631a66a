"""Client-side harnesses that drive the scanner's own pieces with the emulator's data.

Why not in sim/: the emulator imports nothing from core/, shards/, supervisor/ or bot/ (a bug
shared by both sides of a test would hide itself). A harness that feeds emulator frames into
ShardEngine and a scorer is a client of both, so it lives here and uses only sim's public API.
"""
