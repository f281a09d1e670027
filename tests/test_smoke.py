from contacts.models import Contact
from integrations.models import InboxMessage


def test_identify_is_stored_then_applied(segment, drain):
    client, integration = segment
    response = client.post("/v1/identify", {"userId": "u1", "traits": {"email": "A@Example.com", "plan": "pro"}})
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert InboxMessage.objects.get().status == "pending"
    result = drain()
    assert result.processed == 1
    contact = Contact.objects.get()
    assert contact.email == "a@example.com"
    assert contact.properties == {"plan": "pro"}
