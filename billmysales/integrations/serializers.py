"""The API's shape of a connection test report (stores and billers)."""
from rest_framework import serializers


class CheckItemSerializer(serializers.Serializer):
    label = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True)
    detail = serializers.CharField()


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    items = CheckItemSerializer(many=True)


class FieldSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField()
    required = serializers.BooleanField()
    secret = serializers.BooleanField()
    help_text = serializers.CharField()
    default = serializers.JSONField(allow_null=True)
    choices = serializers.ListField(child=serializers.DictField())
    generated = serializers.BooleanField()


class ConnectionTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    label = serializers.CharField()
    credentials = FieldSpecSerializer(many=True)
    config = FieldSpecSerializer(many=True)
