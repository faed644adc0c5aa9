"""The virtual bench: simpy models of the stimulator, loads and instruments, served over real protocols."""
