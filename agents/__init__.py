"""Agent registry: name -> agent class. Everything else (main, evaluation, sweep, report,
benchmarks, tests) finds agents here; each class knows its config file, checks and presets."""

from agents.drol import DROLAgent
from agents.fql import FQLAgent

AGENTS = {'drol': DROLAgent, 'fql': FQLAgent}
