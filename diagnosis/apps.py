from django.apps import AppConfig


class DiagnosisConfig(AppConfig):
    name = "diagnosis"
    verbose_name = "Diagnosis (imaging)"

    def ready(self) -> None:
        from diagnosis import shadow, shipped, tasks, timeline  # noqa: F401  (job kinds, patient-page panel)
        from diagnosis.artifacts import artifact_check
        from diagnosis.demo import demo_imaging_seed
        from diagnosis.heldout import imaging_validate
        from diagnosis.model_card import imaging_artifact_facts, imaging_version_card
        from diagnosis.pacs import tasks as pacs_tasks  # noqa: F401  (the send-to-PACS job)
        from diagnosis.selectors import imaging_model_tasks
        from diagnosis.services import scans_awaiting_model_on_activation
        from medai_site.core.demo import register_demo_seeder
        from medai_site.core.media import media_folder_register
        from medai_site.core.navigation import register_nav_item
        from medai_site.core.roles import Role
        from medai_site.core.services import register_role_permissions
        from medai_site.registry.catalogue import model_kind_register
        from medai_site.registry.shadow import shadow_family_register
        from medai_site.registry.shipped import shipped_model_register

        # Scans, their display frames and heat-maps: the orphan sweep may delete unreferenced
        # files here.
        media_folder_register("scans")
        media_folder_register("predictions")
        # Unmatched studies received over DICOM, waiting for a clinician to assign them.
        media_folder_register("inbox")

        # Model admins curate the training data sets in the Django admin.
        register_role_permissions(
            role=Role.MODEL_ADMIN,
            permissions=["diagnosis.view_imagedataset", "diagnosis.change_imagedataset"],
        )

        model_kind_register(
            label="imaging classifier",
            tasks=imaging_model_tasks,
            load=artifact_check,
            describe=imaging_artifact_facts,
            card=imaging_version_card,
            activated=scans_awaiting_model_on_activation,
            validate=imaging_validate,
        )

        shadow_family_register(
            label="imaging",
            tasks=imaging_model_tasks,
            note=shadow.NOTE,
            reference="clinician's review",
        )

        register_nav_item(
            label="Worklist", url_name="diagnosis:worklist", roles=(Role.CLINICIAN,), order=20
        )
        register_nav_item(
            label="Unmatched studies",
            url_name="diagnosis:inbox",
            roles=(Role.CLINICIAN,),
            order=25,
            group="Imaging",
        )
        register_nav_item(
            label="Unclaimed studies",
            url_name="diagnosis:inbox_unclaimed",
            order=26,
            hospital_it=True,
            group="Imaging",
        )
        register_nav_item(
            label="Model monitoring",
            url_name="diagnosis:monitoring",
            roles=(Role.CLINICIAN, Role.MODEL_ADMIN),
            order=50,
            group="Imaging",
        )
        register_nav_item(
            label="Training",
            url_name="diagnosis:training",
            roles=(Role.MODEL_ADMIN,),
            order=60,
            group="Imaging",
        )

        register_demo_seeder(demo_imaging_seed, order=10)
        # The pre-trained pneumonia model shipped in data/models/, in service from the first start.
        shipped_model_register(
            slug=shipped.SLUG,
            task=shipped.SHIPPED_TASK,
            label="Pneumonia classifier (PneumoniaMNIST)",
            build=shipped.pneumonia_build,
            minutes=4,
        )
