import sluice


@sluice.transform
def process(batch, config):
    """Upper-case the configured column (default `name`)."""
    column = config.get("column", "name")
    return batch.replace(column, [v and v.upper() for v in batch[column]])
