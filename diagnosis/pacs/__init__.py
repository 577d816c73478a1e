"""Studies that arrive from the hospital's PACS and modalities over DICOM: the C-STORE receiver
(`manage.py dicom_listen`), patient matching, and the unmatched-studies inbox."""
