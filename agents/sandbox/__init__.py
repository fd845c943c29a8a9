"""Pre-flight sandbox: a launcher that runs a job's code with every output redirected to a sandbox
database/location and reports statistics of what it wrote (`launcher.py`, shipped to CDE), its
report's models (`report.py`) and the files resource that carries it (`bundle.py`)."""
