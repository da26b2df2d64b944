"""The contracts unit of work: shared.uow.UnitOfWork with the contracts repositories on it.

Use cases reach tables only through these: `uow.contracts` (contracts, their versions,
signatures, decisions, signed documents), `uow.change_requests`, `uow.tranche_locks`,
`uow.clause_versions`, `uow.policies` and `uow.audit` (the hash-chained audit log).
"""
from __future__ import annotations

from services.contracts.adapters import repository
from services.contracts.adapters.audit_log import AuditLog
from shared.uow import UnitOfWork


class ContractsUnitOfWork(UnitOfWork):
    def repositories(self) -> None:
        self.contracts = repository.ContractRepository(self.session)
        self.change_requests = repository.ChangeRequestRepository(self.session)
        self.tranche_locks = repository.TrancheLockRepository(self.session)
        self.clause_versions = repository.ClauseVersionRepository(self.session)
        self.policies = repository.PolicyRepository(self.session)
        self.audit = AuditLog(self.session, self.clock)
