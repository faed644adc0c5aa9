"""simpy model of a multi-channel constant-current stimulator: firmware, pulse schedule, output stage."""
