"""The API's shape of a connection test report (stores and billers)."""
from rest_framework import serializers


class CheckItemSerializer(serializers.Serializer):
    label = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True)
    detail = serializers.CharField()


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    items = CheckItemSerializer(many=True)
