"""What every policy section shares: unknown keys are errors, values never change after loading."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
