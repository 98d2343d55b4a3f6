"""Compliance: consent-violation acknowledgements, the audit report, and the
data subject's rights (access, erasure) with the suppression list that keeps
an erased person from coming back through ingest.

Modules:

- ``store``        the compliance tables in the warehouse (DDL, one place)
- ``matching``     keyed identifier hashes and the patterns that find an
                   identifier's values (and their usual spellings) in text
- ``subject``      resolve a person from one identifier; the access export
- ``erasure``      erase a person from every store under OMNIVUE_HOME
- ``suppression``  the suppression list and the ingest hook
- ``acknowledge``  ``omnivue audit ack``
- ``report``       ``omnivue audit report`` (self-contained HTML)
- ``requests``     queued subject requests, served by the ``subject_requests`` DAG
- ``snapshot_check`` Soda verification of the analysts' snapshot before it is published
- ``cli``          argparse wiring (``add_*_arguments`` / ``run_*``)

Nothing here writes an identifier value anywhere but where it already was:
requests, suppression entries and erasure notices carry keyed hashes
(``OMNIVUE_PSEUDONYM_KEY``), never clear values.
"""
