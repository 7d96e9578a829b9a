"""Native tests: `PYTHONPATH=SLUICE/guest-sdk/python python3 -m unittest`."""

import unittest

import sluice

import plugin


class PluginTest(unittest.TestCase):
    def test_upper_cases_the_column_and_keeps_nulls(self):
        batch = sluice.Batch.of(name=("utf8", ["ada", None]), n=("int64", [1, 2]))
        out = plugin.process(batch, sluice.Config({"column": "name"}))
        self.assertEqual(out["name"], ["ADA", None])
        self.assertEqual(out["n"], [1, 2])

    def test_a_missing_column_is_a_clear_error(self):
        batch = sluice.Batch.of(n=("int64", [1]))
        with self.assertRaisesRegex(sluice.Fatal, "no column `name`"):
            plugin.process(batch, sluice.Config())


if __name__ == "__main__":
    unittest.main()
