"""`infsim plan`: from "this load, this SLO" to the cheapest fleet.

candidates.py  GPU × TP × precision, the SLO, the target rate, each one's calibration
search.py      pure: the fewest replicas meeting the SLO (gallop + bisect, early stops)
job.py         wiring: the searches of all candidates in rounds of store points
output.py      the ranked table with the Pareto front; plan.parquet
report.py      report.html (offline)
main.py        the command as a function; cli.py parses and prints
"""
