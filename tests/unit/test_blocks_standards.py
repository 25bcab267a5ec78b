"""Prefect's standard block test suite over every fraudpipe block.

As prefect-kubernetes' tests/test_block_standards.py does; `test_has_a_valid_image`
is overridden because it downloads the logo (no network in tests).
"""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

import blocks

BLOCKS = [blocks.FilestoreStorage, blocks.RedisWorkQueue, blocks.ArgoServer]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Offline: only check the logo, if any, is an https URL.
        assert block._logo_url is None or str(block._logo_url).startswith("https://")


def test_every_block_is_exported_for_block_register():
    exported = {
        obj for obj in vars(blocks).values() if isinstance(obj, type) and issubclass(obj, Block)
    }
    assert exported == set(BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
def test_block_builds_with_defaults_and_documents_itself(block: type[Block]) -> None:
    instance = block()
    assert instance.get_block_type_slug().startswith("fraudpipe-")
    assert f'{block.__name__}.load("BLOCK_NAME")' in block.get_code_example()
