"""How loaded problems are split (``[sources]`` in the config file). Plain pydantic, like every room's config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SplitConfig(BaseModel):
    """``[sources.split]``: the share of each source held out for evaluation, and the salt that draws it."""

    model_config = ConfigDict(extra="forbid")

    held_out_share: float = Field(0.2, ge=0, le=1, description="share of each source's problems held out")
    salt: str = Field("sinq-split-v1", description="change it to draw a different (equally deterministic) split")
    shares: dict[str, float] = Field({}, description="per-source share, by source name (e.g. humaneval = 0.2)")
    mbpp_official: bool = Field(False, description="an mbpp: file without a split column gets MBPP's published "
                                "split by task_id (prompt 1-10, test 11-510, validation 511-600, train 601-974): "
                                "the paper's protocol, test and validation held out")


class SourcesConfig(BaseModel):
    """``[sources]``: how loaded problems are split."""

    model_config = ConfigDict(extra="forbid")

    split: SplitConfig = SplitConfig()
