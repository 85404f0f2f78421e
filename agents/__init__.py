"""Agent registry: name -> agent class, and name -> the file whose `get_config()` holds its defaults."""

import os

from agents.drol import DROLAgent
from agents.fql import FQLAgent

AGENTS = {'drol': DROLAgent, 'fql': FQLAgent}
CONFIG_FILES = {name: os.path.join(os.path.dirname(__file__), f'{name}.py') for name in AGENTS}
