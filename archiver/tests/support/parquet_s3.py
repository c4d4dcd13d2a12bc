"""Reads levictl's Parquet export back from the S3 server with pyarrow, beside the same export
written to a local directory: prints one JSON object (per type: rows here, rows there, equal).

argv: endpoint, bucket/prefix of the export, local export directory, box.
"""
import json
import os
import sys

import pyarrow.dataset as ds
import pyarrow.fs as pafs

endpoint, root, local, box = sys.argv[1:5]
s3 = pafs.S3FileSystem(
    endpoint_override=endpoint,
    scheme="http",
    access_key="test",
    secret_key="test",
    region="us-east-1",
)
result = {"types": {}}
for entry in sorted(os.listdir(local)):
    if not entry.startswith("type="):
        continue
    kind = entry[len("type="):]
    here = ds.dataset(os.path.join(local, entry), format="parquet", partitioning="hive")
    there = ds.dataset(f"{root}/box={box}/{entry}", filesystem=s3, format="parquet",
                       partitioning="hive")
    a, b = here.to_table(), there.to_table()
    same = a.num_rows == b.num_rows and (
        a.sort_by("pos").to_pylist() == b.select(a.column_names).sort_by("pos").to_pylist())
    result["types"][kind] = [a.num_rows, b.num_rows, same]

# Many boxes' exports as one dataset: the box is a partition column read from the path.
files = [f.path for f in s3.get_file_info(pafs.FileSelector(root, recursive=True))
         if f.type == pafs.FileType.File]
result["keys_outside_box"] = [f for f in files if not f.startswith(f"{root}/box={box}/type=")]
trades = [f for f in files if "/type=execution_report/" in f]
if trades:
    table = ds.dataset(trades, filesystem=s3, format="parquet",
                       partitioning=ds.partitioning(flavor="hive"),
                       partition_base_dir=root).to_table()
    result["execution_report_boxes"] = sorted(set(table.column("box").to_pylist()))
print(json.dumps(result))
