from django.apps import AppConfig


class AffiliatesConfig(AppConfig):
    name = "affiliates"

    def ready(self) -> None:
        from affiliates import receivers
        from affiliates.services import conversions_auto_approve
        from common.workqueue import register_runner
        from contacts.signals import contact_erased, contacts_merged

        contact_erased.connect(receivers.on_contact_erased, dispatch_uid="affiliates-erased")
        contacts_merged.connect(receivers.on_contacts_merged, dispatch_uid="affiliates-merged")
        # process_due and the cluster approve conversions whose offer's days have passed.
        register_runner("affiliates", conversions_auto_approve, label="affiliate auto-approval")
