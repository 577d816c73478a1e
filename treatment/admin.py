# Assessments and plans are patient data: they are not in the admin, whose staff (model admins)
# must not see patients; clinicians reach them through the patient pages only.
