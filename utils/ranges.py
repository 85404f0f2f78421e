"""Integer lists written the way people type them on a command line: '0-7', '0,3,5' or '2'."""

from utils.errors import UserError


def parse_ints(text, flag):
    """[ints] from '0-7', '0,3,5', '1-2,5' or '2': ranges ascending, no number twice, none negative.

    `flag` names the option in the error message, e.g. '--seeds'.
    """
    numbers = []
    try:
        for part in text.split(','):
            if '-' in part:
                low, high = (int(x) for x in part.split('-'))
                if low > high:
                    raise UserError(f'{flag}={text!r}: the range {part} is empty; write it as {high}-{low}.')
                numbers.extend(range(low, high + 1))
            else:
                numbers.append(int(part))
    except ValueError as error:
        raise UserError(f'{flag}={text!r}: use a range like 0-7 or a list like 0,3,5.') from error
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise UserError(f'{flag}={text!r} names {", ".join(map(str, repeated))} more than once.')
    return numbers


def contiguous_runs(numbers):
    """[(first, count)] covering sorted `numbers` with runs of consecutive integers: [0,1,2,5] -> [(0,3),(5,1)]."""
    runs = []
    for n in sorted(numbers):
        if runs and runs[-1][0] + runs[-1][1] == n:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((n, 1))
    return runs
