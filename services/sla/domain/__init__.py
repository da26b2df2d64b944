"""The sla domain: pure rules, no framework and no SQL.

`ticket_clock` (business-time clocks per ticket), `compliance` (a window's standing per metric kind),
`credits` (service credits by tier, per breach or per window, capped), `definitions`, `periods`, `samples`.
"""
