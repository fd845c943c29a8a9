"""Deceptive fixes: plausible wrong fixes of the sample scenarios, each of which runs to exit 0
and leaves the output wrong or absent. The healer must never call one of them healed.

    bench/deceptive/<scenario>/<variant>/
        <application file>      the wrongly fixed file (named as the scenario's), or
        fix.json                job-spec changes, deep-merged ({"spark": {...}}), as in bench/fixes/
        deceptive.json          {"trick": what the wrong fix does, "caught_by": what a data
                                 comparison with the last good output sees}

`python -m bench.deceptive.verify` shows, on real Spark, that each one exits 0 and that the
scenario's output check rejects what it leaves.
"""
