"""受注: orders from the malls and their stock effects."""
