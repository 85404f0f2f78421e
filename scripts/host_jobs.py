"""`scripts.sweep --format=hosts`: the sweep's unfinished groups split into one job list per host,
a runner that works through one list, and a launcher that starts every worker of a TPU VM slice.

One process per host owns all its chips: a group already trains its tasks and seeds together,
sharded over the host's devices, so a host runs its groups one after another. The same lists serve
a machine with several GPUs, one runner per GPU (`CUDA_VISIBLE_DEVICES=i bash run_host.sh i`).

A TPU VM slice of several hosts is one TPU system, whose processes wait for each other at start;
`TPU_HOST_BOUNDS=1,1,1` makes each host a system of its own, so the hosts run independently. A
worker finds its index in `TPU_WORKER_ID` or in the VM's metadata (`agent-worker-number`).
"""

import glob
import os
import shlex

# The VM metadata entry holding a TPU VM worker's index (0 .. hosts - 1).
WORKER_NUMBER_URL = 'http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number'


def split_by_runs(jobs, num_hosts):
    """`jobs` over `num_hosts` lists, each job to the list with the fewest runs so far (largest
    groups first), keeping the sweep's order within a list."""
    lists, loads = [[] for _ in range(num_hosts)], [0] * num_hosts
    placed = {}
    for index in sorted(range(len(jobs)), key=lambda i: -len(jobs[i].run_dirs)):
        host = loads.index(min(loads))
        placed[index] = host
        loads[host] += len(jobs[index].run_dirs)
    for index, job in enumerate(jobs):
        lists[placed[index]].append(job)
    return lists


def runner_script(root):
    """run_host.sh [INDEX]: runs the commands of host<INDEX>.txt (next to it) one after another from
    the repository root, each in a subshell, a line with the time as each starts and ends; a failed
    command does not stop the list, and the runner exits 1 at the end if any failed."""
    return '\n'.join(
        [
            '#!/bin/bash',
            '# Written by scripts.sweep. Usage: bash run_host.sh [INDEX] (default: the TPU VM worker number).',
            'set -uo pipefail',
            'index=${1:-${TPU_WORKER_ID:-$(curl -sf -H "Metadata-Flavor: Google" ' + WORKER_NUMBER_URL + ')}}',
            'list="$(cd "$(dirname "$0")" && pwd)/host${index}.txt"',
            '[ -f "$list" ] || { echo "no job list $list for host index \'$index\'" >&2; exit 2; }',
            f'cd {shlex.quote(root)}',
            'failed=0',
            'while IFS= read -r command <&3; do',
            '  echo "$(date "+%F %T") start: $command"',
            '  if (eval "$command") < /dev/null; then status=ok; else status="exit $?"; failed=$((failed + 1)); fi',
            '  echo "$(date "+%F %T") $status: $command"',
            'done 3< "$list"',
            'echo "host $index: $failed failed"',
            '[ "$failed" -eq 0 ]',
            '',
        ]
    )


def launcher_script(root, runner):
    """launch_tpu.sh NAME [gcloud flags]: every worker of TPU VM NAME starts `runner` in the
    background (it outlives the ssh session), its output in worker.log beside the lists."""
    log = os.path.join(os.path.dirname(runner), 'worker.log')
    remote = f'cd {shlex.quote(root)} && TPU_HOST_BOUNDS=1,1,1 nohup bash {shlex.quote(runner)}'
    remote += f' > {shlex.quote(log)} 2>&1 < /dev/null &'
    return '\n'.join(
        [
            '#!/bin/bash',
            '# Written by scripts.sweep. Usage: bash launch_tpu.sh TPU_NAME [--zone=ZONE --project=PROJECT ...]',
            '# The checkout (with .venv and this folder) must be at the same path on every worker.',
            'set -euo pipefail',
            '[ $# -ge 1 ] || { echo "usage: bash $0 TPU_NAME [gcloud flags such as --zone=ZONE]" >&2; exit 2; }',
            'name=$1',
            'shift',
            f'gcloud compute tpus tpu-vm ssh "$name" --worker=all "$@" --command={shlex.quote(remote)}',
            '',
        ]
    )


def write_host_lists(jobs, folder, num_hosts, root):
    """Writes host<i>.txt (one command a line) for i < num_hosts, run_host.sh and launch_tpu.sh to
    `folder` (lists of an earlier, larger split removed); returns the runner's and launcher's paths."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    for old in glob.glob(os.path.join(folder, 'host*.txt')):
        os.remove(old)
    for index, host_jobs in enumerate(split_by_runs(jobs, num_hosts)):
        with open(os.path.join(folder, f'host{index}.txt'), 'w') as f:
            f.write(''.join(shlex.join(job.command) + '\n' for job in host_jobs))
    runner, launcher = os.path.join(folder, 'run_host.sh'), os.path.join(folder, 'launch_tpu.sh')
    with open(runner, 'w') as f:
        f.write(runner_script(root))
    with open(launcher, 'w') as f:
        f.write(launcher_script(root, runner))
    return runner, launcher
