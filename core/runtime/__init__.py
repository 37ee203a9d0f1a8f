"""Runtime layer: hardware (cores, GPU), the numba cache and warm-up, time estimates."""
