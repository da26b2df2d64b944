"""The contracts use cases. Each opens and commits its own unit of work (`unit_of_work.py`) and
reaches tables only through the repositories on it: `drafting`, `clause_versions`, `lifecycle`,
`change_requests`; `catalogue` is the clause library as each organisation sees it."""
