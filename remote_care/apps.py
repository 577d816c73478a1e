from django.apps import AppConfig


class RemoteCareConfig(AppConfig):
    name = "remote_care"
    verbose_name = "Remote care"

    def ready(self) -> None:
        from medai_site.core.demo import register_demo_seeder
        from medai_site.core.media import media_folder_register
        from medai_site.core.navigation import register_nav_badges, register_nav_item
        from medai_site.core.roles import Role
        from medai_site.registry.catalogue import model_kind_register
        from medai_site.registry.shadow import shadow_family_register
        from medai_site.registry.shipped import shipped_model_register
        from remote_care import timeline  # noqa: F401  (patient-page panel)
        from remote_care.analytics import receivers as _rollup_receivers  # noqa: F401
        from remote_care.analytics import tasks as _analytics_jobs  # noqa: F401  (beat task)
        from remote_care.demo import demo_monitoring_seed, demo_risk_seed
        from remote_care.devices import tasks as _device_jobs  # noqa: F401  (job kinds)
        from remote_care.messaging.selectors import unread_nav_badges
        from remote_care.monitoring import tasks as _monitoring_tasks  # noqa: F401  (beat task)
        from remote_care.progression import tasks as _progression_jobs  # noqa: F401
        from remote_care.risk import shadow as risk_shadow
        from remote_care.risk import tasks as _risk_jobs  # noqa: F401
        from remote_care.risk import training as risk_training
        from remote_care.risk.heldout import risk_validate
        from remote_care.risk.services import RISK_TASK, risk_model_from_bytes

        media_folder_register("messages")  # photos sent in messages

        model_kind_register(
            label="deterioration risk model",
            tasks=lambda: [RISK_TASK],
            load=risk_model_from_bytes,
            validate=risk_validate,
        )
        shadow_family_register(
            label="deterioration risk", tasks=lambda: [RISK_TASK], note=risk_shadow.NOTE
        )

        register_nav_item(
            label="Monitoring", url_name="remote_care:board", roles=(Role.CLINICIAN,), order=30
        )
        register_nav_item(
            label="Messages", url_name="remote_care:inbox", roles=(Role.CLINICIAN,), order=40
        )
        register_nav_item(
            label="Risk model",
            url_name="remote_care:risk_models",
            roles=(Role.MODEL_ADMIN,),
            order=80,
            group="Remote care",
        )
        register_nav_item(
            label="Progression",
            url_name="remote_care:progression",
            roles=(Role.RESEARCHER, Role.MODEL_ADMIN),
            order=100,
            group="Remote care",
        )
        register_nav_item(
            label="Population",
            url_name="remote_care:analytics",
            roles=(Role.RESEARCHER, Role.MODEL_ADMIN, Role.CLINICIAN),
            order=110,
            group="Remote care",
        )
        # The patient portal's own menu: all that a patient signed in to it sees.
        register_nav_item(label="My health", url_name="portal:home", order=0, menu="portal")
        register_nav_item(label="Messages", url_name="portal:messages", order=10, menu="portal")
        register_nav_badges(unread_nav_badges)

        register_demo_seeder(demo_monitoring_seed, order=30)
        register_demo_seeder(demo_risk_seed, order=40)
        shipped_model_register(
            slug=risk_training.SHIPPED_SLUG,
            task=RISK_TASK,
            label="Deterioration model (GRU on PhysioNet 2012)",
            build=risk_training.deterioration_build,
            minutes=8,
        )
