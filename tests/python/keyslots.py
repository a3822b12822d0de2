"""Redis Cluster's key slots, for tests that need keys on chosen shards
(Tessera's shards own contiguous quarters of the slots with 4 shards)."""


def slot(key):
    """CRC16 (XMODEM) of a key mod 16384; the tests' keys have no hash tag."""
    crc = 0
    for b in key.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % 16384


def quarter(key):
    """Which quarter of the slot space (a 4-shard server's shard) owns it."""
    return slot(key) * 4 // 16384
