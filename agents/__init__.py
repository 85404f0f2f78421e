"""Agent registry: name -> agent class. Everything else (main, evaluation, sweep, report,
benchmarks, tests) finds agents here; each class knows its config file, checks and presets."""

from agents.drol import DROLAgent
from agents.fql import FQLAgent
from agents.ifql import IFQLAgent
from agents.iql import IQLAgent
from agents.rebrac import ReBRACAgent
from agents.sac import SACAgent

AGENTS = {
    'drol': DROLAgent,
    'fql': FQLAgent,
    'iql': IQLAgent,
    'ifql': IFQLAgent,
    'rebrac': ReBRACAgent,
    'sac': SACAgent,
}
