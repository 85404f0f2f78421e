"""The device a benchmark ran on, named in its results."""

import os
import platform

import jax


def describe_device():
    """The accelerator's name, or the CPU's model and core count."""
    device = jax.devices()[0]
    if device.platform != 'cpu':
        return f'{device.platform.upper()} {device.device_kind}'
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            model = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'CPU {model} ({os.cpu_count()} cores visible)'
