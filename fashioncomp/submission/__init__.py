"""Submissions: the test predictions written in the format a competition wants, validated against
test.csv before any file is replaced.

    formats.py    the named formats (SUBMISSION_FORMATS, `submission.format`) and the files each writes
    per_image.py  formats with one row per image; columns.py: their label columns
    long.py       one row per image and label
    labels.py     the label space and the id styles of a single label column (`submission.label_ids`)
    options.py    the `submission` config section (format, image_id, label_ids, columns)
    checks.py     reading written files back and the checks every format shares
    writer.py     write_submission / validate_submission
"""
from fashioncomp.submission.checks import SubmissionError
from fashioncomp.submission.formats import (CODE_COMPETITION_FILE, SUBMISSION_FORMATS, FormatChoice, as_options,
                                            check_options, submission_files, submission_format)
from fashioncomp.submission.labels import LABEL_ID_STYLES
from fashioncomp.submission.options import DEFAULT_FORMAT, IMAGE_IDS, SubmissionOptions
from fashioncomp.submission.writer import format_attributes, validate_submission, write_submission

__all__ = ["CODE_COMPETITION_FILE", "DEFAULT_FORMAT", "FormatChoice", "IMAGE_IDS", "LABEL_ID_STYLES",
           "SUBMISSION_FORMATS", "SubmissionError", "SubmissionOptions", "as_options", "check_options",
           "format_attributes", "submission_files", "submission_format", "validate_submission", "write_submission"]
