"""Operations on published tiers: rollback, the opt-out audit and purge, and the policy preview."""
