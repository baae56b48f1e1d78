"""Tests of the serve role. A package, so its conftest and helpers never collide with other test folders' modules."""
